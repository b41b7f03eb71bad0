"""Super-resolution (chapter 7) has moved to recipes of its own: :mod:`.msfusion` (the multi-scale
fusion CNN, 2D) and :mod:`.srgan` (the 3D SRGAN). This module no longer registers any task."""
