"""suites/image: The image a docker recipe deploys holds the inference stack the recipe pins."""
