"""The MLflow store and registry: where the store is, fetching versions, versions as people
use them (list, promote, compare), and the weekly champion check."""
