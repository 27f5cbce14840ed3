"""Retired backtest engine kept for reference, as KTRDR keeps old code in archive/.

It must never reach an image: .dockerignore excludes archive/ (and tests/).
Importing it fails on purpose, so a build that copied it by mistake and
imported it would say so.
"""

raise ImportError("archive/ is reference material, not part of the application")
