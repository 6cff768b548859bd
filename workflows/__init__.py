"""Nipype interfaces and workflow builders (init_*_wf) over pipeline/."""
