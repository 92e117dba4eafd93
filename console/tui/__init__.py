"""The full-screen Textual console: app, screens, widgets, dialogs and themes."""
