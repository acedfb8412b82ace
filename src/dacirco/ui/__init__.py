"""The web dashboard at ``/ui``: server-rendered pages (Jinja2) and a little plain JavaScript
that follows the event stream; everything it needs ships in this package."""
