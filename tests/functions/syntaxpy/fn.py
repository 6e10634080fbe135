def fn(input, headers):
    return str(input
