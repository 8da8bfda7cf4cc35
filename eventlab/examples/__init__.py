"""Small example domains used by the demo, the datasets, the notebooks and the tests."""
