"""SAM 3's image-level concept detector ("the finder"), one module per component.

Submodules are named as Meta's official `sam3.pt` names them under `detector.`, so its
weights load with that prefix stripped.
"""
