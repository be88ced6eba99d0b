"""SAM 3's image-level concept detector (the "finder"), one module per component.

Module and parameter names follow Meta's `sam3` checkpoint under `detector.`, so its
weights load with that prefix stripped and nothing renamed.
"""
