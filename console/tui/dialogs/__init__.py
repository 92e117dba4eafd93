"""The console's modal dialogs: confirmations, action progress, text prompts."""
