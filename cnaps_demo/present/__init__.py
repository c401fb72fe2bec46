"""Presentation without a UI toolkit: the diagram, the explanation and its references, the
comparison helpers, the bundled examples and the example-result cache. Nothing here imports
gradio; ``ui/`` turns these into a page."""
