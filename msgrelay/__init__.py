"""msgrelay: bulk voice, voice-SMS, international SMS, MMS and SMS through Chinese providers."""
__version__ = "0.1.0"
