"""Pure TensorFlow box operations."""
