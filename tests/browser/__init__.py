"""Browser tests: a real headless Chromium driving the HTML app served by waitress."""
