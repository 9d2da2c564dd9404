"""MLP(64, [32, 10]) on scikit-learn's handwritten digits, trained in C with fit(), then saved and reloaded."""

import random

from micrograd_c import MLP, optim
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

digits = load_digits()
X = digits.data / 16.0  # pixels in [0, 1]
X_train, X_test, y_train, y_test = train_test_split(X, digits.target, test_size=0.25, random_state=0)

random.seed(0)
model = MLP(64, [32, 10])
opt = optim.Adam(model.parameters(), lr=0.01)
model.fit(X_train, y_train, loss="cross_entropy", optimizer=opt, epochs=30, batch_size=32, seed=0)

scores = model.predict(X_test)
correct = sum(max(range(10), key=row.__getitem__) == label for row, label in zip(scores, y_test))
print(f"held-out accuracy: {correct / len(y_test):.1%}")

model.save("digits.safetensors")
print("reloaded model agrees:", MLP.load("digits.safetensors").predict(X_test[:5]) == scores[:5])
