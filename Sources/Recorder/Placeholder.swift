// Recorder: see README.
