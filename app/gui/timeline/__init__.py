"""The timeline, playback, confidence strips and frame navigation."""
