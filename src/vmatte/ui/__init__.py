"""The local web app (``vmatte ui``): see :mod:`vmatte.ui.serve`. Gradio is imported only by
:mod:`vmatte.ui.app`, so the session/job logic works (and is tested) without it."""
