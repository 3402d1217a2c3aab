"""The web layer: the app factory, the JSON API and (later) the UI shell."""
