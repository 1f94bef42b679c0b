"""Beacon's custom actions (rasa-sdk). Nothing here connects or loads at import."""
