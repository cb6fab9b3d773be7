"""Pure scheduling pipeline: filters, selectors, scorers."""
