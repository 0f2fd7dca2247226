// The PNG files the visualize stage writes and the report shows, named once for the tests that expect them.

export const PNG_PATHS = [
  'training_curves.png',
  'confusion_matrix.png',
  'per_class_metrics.png',
  'weight_visualization.png',
  'sample_predictions.png',
  'misclassified.png',
  'activation_patterns.png',
  'class_counts.png',
  'training_images.png',
];
