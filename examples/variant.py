"""A student's variant of the lesson, as Keras code: other filters and kernel sizes, strides
and 'same' padding, Dropout, BatchNormalization, and 'sgd' instead of 'adam'. Only the import
line differs from what runs on TensorFlow.

    python examples/variant.py
"""

from mnist_cnn.keras import datasets, layers, models

(train_images, train_labels), (test_images, test_labels) = datasets.mnist.load_data()
train_images, test_images = train_images / 255.0, test_images / 255.0

model = models.Sequential([
    layers.Conv2D(16, (5, 5), strides=2, padding='same', activation='relu',
                  input_shape=(28, 28, 1)),
    layers.BatchNormalization(),
    layers.Conv2D(32, 3, padding='same', activation='relu'),
    layers.MaxPooling2D((2, 2)),
    layers.Dropout(0.25),
    layers.Flatten(),
    layers.Dense(128, activation='relu'),
    layers.Dropout(0.5),
    layers.Dense(10, activation='softmax'),
])
model.summary()

model.compile(optimizer='sgd', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
model.fit(train_images, train_labels, epochs=2, batch_size=64, validation_split=0.1)

test_loss, test_acc = model.evaluate(test_images, test_labels, verbose=2)
print(test_acc)
