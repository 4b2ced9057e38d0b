"""CSV import of CRM data: reading, mapping, validation and upsert."""
