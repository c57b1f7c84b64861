"""AdaReg against an unregularized network on scikit-learn's digits.

Small training sets drawn from the 1,797 digits shipped with scikit-learn; the
rest is the test set. Both methods train the same network (64-100-10, Adam,
200 epochs) with the same seeds; only ``reg_lambda`` differs. Runs offline in
well under a minute::

    python examples/demo_digits.py
"""

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sk_adareg import AdaRegClassifier

torch.set_num_threads(1)  # tiny networks train fastest on one thread
X, y = load_digits(return_X_y=True)
X = X / 16.0
methods = {"no regularization": {"reg_lambda": 0.0}, "AdaReg (defaults)": {}}
print(f"{'n_train':>7}  " + "  ".join(f"{m:>20}" for m in methods))
for n_train in (100, 300):
    scores = {m: [] for m in methods}
    for seed in range(3):
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, train_size=n_train, stratify=y, random_state=seed)
        for method, params in methods.items():
            clf = AdaRegClassifier(random_state=seed, **params).fit(X_train, y_train)
            scores[method].append(clf.score(X_test, y_test))
    print(f"{n_train:>7}  " + "  ".join(
        f"{np.mean(s):>13.3f} ± {np.std(s):.3f}" for s in scores.values()))
print("test accuracy, mean ± std over 3 splits")
