"""Wyoming (Home Assistant, Rhasspy) servers for speech to text and text to speech, in front of the asr and tts.

``protocol`` reads the framing with limits and holds the connection handler;
``asr`` and ``tts`` answer their events; ``info`` is what ``describe`` reports;
``server`` runs both (``voxstack wyoming``).
"""
