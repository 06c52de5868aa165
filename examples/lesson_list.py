"""The lesson's second way to write its model: one `Sequential([...])` list, with a third
max-pooling layer (60,554 parameters). Only the import line differs from the Keras code.

    python examples/lesson_list.py [EPOCHS]

EPOCHS defaults to the lesson's 5.
"""

import sys

from mnist_cnn.keras import datasets, layers, models

EPOCHS = int(sys.argv[1]) if len(sys.argv) > 1 else 5

(train_images, train_labels), (test_images, test_labels) = datasets.mnist.load_data()
train_images, test_images = train_images / 255.0, test_images / 255.0

model = models.Sequential([
    layers.Conv2D(32, (3, 3), activation='relu', input_shape=(28, 28, 1)),
    layers.MaxPooling2D((2, 2)),
    layers.Conv2D(64, (3, 3), activation='relu'),
    layers.MaxPooling2D((2, 2)),
    layers.Conv2D(64, (3, 3), activation='relu'),
    layers.MaxPooling2D((2, 2)),
    layers.Flatten(),
    layers.Dense(64, activation='relu'),
    layers.Dense(10, activation='softmax'),
])
model.summary()

model.compile(optimizer='adam',
              loss='sparse_categorical_crossentropy',
              metrics=['accuracy'])

model.fit(train_images, train_labels, epochs=EPOCHS)

test_loss, test_acc = model.evaluate(test_images, test_labels, verbose=2)

print(test_acc)
