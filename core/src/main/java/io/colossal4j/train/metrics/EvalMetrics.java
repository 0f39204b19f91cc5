package io.colossal4j.train.metrics;

/** One evaluation: after {@code step} optimizer steps, in {@code epoch}; accuracy is a fraction in [0, 1]. */
public record EvalMetrics(long step, int epoch, double loss, double accuracy) {}
