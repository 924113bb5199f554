"""slee: a JAIN SLEE-style service container on Twisted and ZODB."""
