export { createSessionRecorder, type RecorderOptions, type FileSessionRecording, type FileSessionRecorder } from './writer.ts';
export { readRecording, readRecordingBatches, RecordingError, type RecordingEntry, type ReadOptions, type RecordingErrorCode } from './reader.ts';
export { RECORDING_VERSION, recordingFileName, describeMasks, decisionMasksField, recordedDecisionMasks, type RecordingHeader, type RecordingStatement, type RecordingFooter } from './format.ts';
export { listRecordingFiles, summarizeRecording, type SessionSummary } from './summary.ts';
export { parseCast, readCast, sessionCasts, playCast, type Cast, type CastEvent, type CastHeader, type PlayOptions } from './cast.ts';
