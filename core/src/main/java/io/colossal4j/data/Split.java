package io.colossal4j.data;

/** Which part of a data set: the training part or the held-out test part. */
public enum Split { TRAIN, TEST }
