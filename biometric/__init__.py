"""Face verification (1:1) and duplicate screening (1:N) for citizen ID card holders.

Data flow, one module per step: decode -> detect -> subject -> align -> embed -> compare -> decide,
orchestrated by :mod:`biometric.pipeline`.
"""

__version__ = "0.1.0"
