# A package, so that pytest names these modules runtimes.test_* and they
# do not clash with the same file names in tests/e2e.
