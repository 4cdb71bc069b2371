"""The JointDNN harness: devices, profiling, links, the partition planner, the end-to-end runner,
reports and the CLI. Importing this package is cheap: no TensorFlow, no side effects."""
