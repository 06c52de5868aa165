"""mnist-cnn: the classic convolutional-network-on-MNIST lesson as a real tool."""

__version__ = "0.1.0"
