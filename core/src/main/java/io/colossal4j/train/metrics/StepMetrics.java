package io.colossal4j.train.metrics;

/**
 * One training step as reported: the global step (optimizer steps taken, 1-based after the step), the epoch,
 * the mean loss of the step, the learning rate used, throughput, and the training accuracy of the step's batch
 * (NaN when not measured).
 */
public record StepMetrics(long step, int epoch, double loss, double lr, double samplesPerS, double accuracy) {}
