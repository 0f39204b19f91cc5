package io.colossal4j.train;

import io.colossal4j.models.ModelSpec;
import io.colossal4j.models.Zoo;
import io.colossal4j.nn.ModuleContext;
import io.colossal4j.nn.UnitModel;
import io.colossal4j.optim.Adam;
import io.colossal4j.optim.Lamb;
import io.colossal4j.optim.Lars;
import io.colossal4j.optim.LrSchedule;
import io.colossal4j.optim.Optimizer;
import io.colossal4j.optim.ParamGroup;
import io.colossal4j.optim.Sgd;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.train.config.ModelConfig;
import io.colossal4j.train.config.OptimizerConfig;
import io.colossal4j.train.config.ScheduleConfig;
import java.util.List;
import java.util.Map;

/** Turns the typed config into the objects it describes: model, optimizer, learning-rate schedule. */
public final class Builders {
  private Builders() {}

  /** The zoo model the config names, adapted to the data's classes, channels and image size. */
  public static UnitModel model(ModelConfig m, ModuleContext ctx, int dataClasses, int dataChannels, int dataImageSize) {
    Zoo.Entry entry = Zoo.entry(m.name());
    ModelSpec spec = new ModelSpec(entry.name(), m.numClasses().orElse(dataClasses), m.imageSize().orElse(dataImageSize),
        m.inChannels().orElse(dataChannels), m.dropout().orElse(0.0), m.dropPath().orElse(0.0));
    return entry.builder().apply(ctx, spec);
  }

  public static Optimizer optimizer(OptimizerConfig c, Map<String, Tensor> params) {
    List<ParamGroup> groups = c.decayNormsAndBiases() ? ParamGroup.single(params, c.weightDecay()) : ParamGroup.decayAndNoDecay(params, c.weightDecay());
    return switch (c) {
      case OptimizerConfig.Sgd s -> new Sgd(groups, s.momentum(), s.dampening(), s.nesterov());
      case OptimizerConfig.Adam a -> new Adam(groups, a.betas().get(0), a.betas().get(1), a.eps(), false);
      case OptimizerConfig.AdamW a -> new Adam(groups, a.betas().get(0), a.betas().get(1), a.eps(), true);
      case OptimizerConfig.Lamb l -> new Lamb(groups, l.betas().get(0), l.betas().get(1), l.eps());
      case OptimizerConfig.Lars l -> new Lars(groups, l.momentum(), l.trustCoefficient(), false);
    };
  }

  /** The schedule over {@code totalSteps} optimizer steps with base learning rate {@code lr}. */
  public static LrSchedule schedule(ScheduleConfig c, double lr, long totalSteps) {
    long total = Math.max(1, totalSteps);
    return switch (c) {
      case ScheduleConfig.Constant k -> k.warmupSteps() == 0 ? new LrSchedule.Constant(lr) : new LrSchedule.Linear(lr, Math.min(k.warmupSteps(), total), 0, 0);
      case ScheduleConfig.Linear l -> new LrSchedule.Linear(lr, Math.min(l.warmupSteps(), total), total, l.startFactor());
      case ScheduleConfig.Cosine k -> new LrSchedule.Cosine(lr, Math.min(k.warmupSteps(), total), total, k.minLr(), k.warmupStartLr());
      case ScheduleConfig.StepDecay s -> new LrSchedule.Step(lr, s.every(), s.gamma());
      case ScheduleConfig.OneCycle o -> new LrSchedule.OneCycle(lr, Math.max(2, total), o.pctStart(), o.divFactor(), o.finalDivFactor());
    };
  }
}
