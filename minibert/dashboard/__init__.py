"""The minibert dashboard: a Streamlit app over a runs folder (``minibert dashboard``).

It ships inside the package (``pip install 'minibert[dashboard]'`` is enough to run
``minibert dashboard``): ``app.py`` is the one entry (``st.navigation``), ``pages/`` holds one
thin script per page (layout and widgets only), :mod:`~minibert.dashboard.common` the shared
pickers and the error guard, :mod:`~minibert.dashboard.launch` how the server is started.
Numbers come from :mod:`minibert.inspect`, figures from :mod:`minibert.viz`.
"""
