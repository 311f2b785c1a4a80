"""Claimant gallery: enrolment store tables, the FAISS index kept in step with them, duplicate
cases for review, and bulk screening. The store is the source of truth; the index is derived."""
