"""The service layer: every state change of a ticket goes through here."""
