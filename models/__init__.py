"""Models: the zoo, graph analysis (cut points), splitting into segments, TFLite export with a
content-addressed cache, bundles and the LiteRT runtime. Importing this package does not import
TensorFlow; the modules that need it import it themselves."""
