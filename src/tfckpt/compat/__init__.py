"""What tfckpt borrows from TensorFlow's Python surface so that code written against
``tf.train`` runs unchanged.

The namespace to import is :mod:`tfckpt.tf_compat` (``from tfckpt import tf_compat as tf``);
this package holds its pieces, one job each:

- :mod:`~tfckpt.compat.status`: ``tf.errors.OpError`` and its subclasses, with TensorFlow's
  codes and constructors (the base of :mod:`tfckpt.errors`);
- :mod:`~tfckpt.compat.debug_string`: ``CheckpointReader.debug_string()`` as TensorFlow
  prints it, with :mod:`~tfckpt.compat.hash_order` for the order of V1 checkpoints;
- :mod:`~tfckpt.compat.polling`: ``checkpoints_iterator`` and ``wait_for_new_checkpoint``;
- :mod:`~tfckpt.compat.train`, :mod:`~tfckpt.compat.train_v1`, :mod:`~tfckpt.compat.errors`,
  :mod:`~tfckpt.compat.dtypes`: the ``tf.train``, ``tf.compat.v1.train``, ``tf.errors`` and
  ``tf.dtypes`` namespaces.

This ``__init__`` imports nothing, so that low layers (:mod:`tfckpt.errors`) can build on
:mod:`~tfckpt.compat.status` without loading the namespaces.
"""
