"""reelpolicy portal: the companies' pages in the browser."""
