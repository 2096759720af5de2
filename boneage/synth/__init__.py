"""Synthetic cohorts: procedural phantoms of children's hand radiographs."""
