"""Sizing, in one home: how much memory a step's process takes, and how a node is shared.

* :mod:`boneage.memory.model`: the model-based estimate (a :class:`ModelFootprint`
  of the model's parameters and layer outputs -> the peak RSS of a process),
  and the largest batch a GPU holds;
* :mod:`boneage.memory.measure`: peak RSS of a child process, and of a few
  train steps of an experiment (the probe);
* :mod:`boneage.memory.calibrate`: predict on one shard, measured;
* :mod:`boneage.memory.node`: the figures rules ask for, and the node plan
  (processes x threads by memory and cores);
* :mod:`boneage.memory.batch`: ``batch_size: auto``, resolved by the CLI.

The planning side imports training (the probe runs train steps); training,
data, models, distribute and predict never import this package
(``tests/unit/test_imports.py``).
"""
