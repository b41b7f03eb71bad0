"""The course's own tooling, apart from the science: the exercise checks (``checks``), the
student and instructor versions with their command line (``exercises``, ``python -m
mricourse.course.exercises``), running notebooks and their Colab cell (``notebooks``), results
files and the results page (``results``, ``report``), the benchmark (``bench``, ``python -m
mricourse.course.bench``) and its side-by-side runs against reference code (``anchors``), figures
and tables (``viz``), and the book's Sphinx extension (``sphinx_ext``).

Nothing below :mod:`mricourse.course` imports it.
"""
