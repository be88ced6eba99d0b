"""Finding objects by phrase or exemplar: the Find bar, proposals for review, the tool."""
