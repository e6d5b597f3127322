"""Reading and checking the spec's files: vocabularies and exit codes (`spec`), errors as data
(section 14), typed values and canonical forms (section 4), bounded reading with positions
(section 3), the model, templating and expansion (sections 6 and 7), the stage graph, the JSON
Schemas, `validate` and its reports. SPEC sections 1 to 7, 9 (reading the lock), 12 and 14.

The lowest layer: it imports nothing of reftool above it.
"""
