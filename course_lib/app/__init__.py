"""Layer 4, the applications on top: the command line (`cli`, `python -m
course_lib`), the latency benchmark (`bench`), the peak-memory probe (`memory`),
independent trainings in parallel processes (`parallel`), the book's plots and
players (`viz`) and the labs' student copies (`labs`). They may import every layer
below."""
