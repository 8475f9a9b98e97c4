package cache

// StoreOf is the layout under an image cache, for package cache_test.
func StoreOf(c *Images) *ImageStore { return c.store }
