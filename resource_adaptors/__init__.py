"""Resource adaptors: the container's bridges to protocols and resources."""
