"""The scikit-learn estimators: shared base, classifier, regressor and the default network.

Import the estimators from :mod:`sk_adareg`; this package imports nothing itself, so
that the engine can import the default network without importing the estimators.
"""
