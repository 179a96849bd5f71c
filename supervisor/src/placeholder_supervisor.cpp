// placeholder: keeps the library non-empty until the part lands
